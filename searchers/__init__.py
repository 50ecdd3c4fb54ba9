"""Searchers: black-box ask/tell searchers and one-shot (weight-sharing) searchers."""

from .base import BlackBoxSearcher, OneShotSearcher, Proposal, objective_value
from .registry import SEARCHERS, get_searcher, list_searchers, register_searcher

__all__ = ["BlackBoxSearcher", "OneShotSearcher", "Proposal", "objective_value", "SEARCHERS", "get_searcher",
           "list_searchers", "register_searcher"]
