"""nasatlas subpackage."""
