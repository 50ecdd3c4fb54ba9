"""Searchers: black-box ask/tell searchers and one-shot (weight-sharing) searchers."""

from .base import BlackBoxSearcher, OneShotSearcher, Proposal
from .registry import SEARCHERS, get_searcher, list_searchers, register_searcher

__all__ = ["BlackBoxSearcher", "OneShotSearcher", "Proposal", "SEARCHERS", "get_searcher", "list_searchers",
           "register_searcher"]
