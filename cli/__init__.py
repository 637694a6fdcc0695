"""dmzwatch: a news-event monitor for purges, summits and defections."""

__version__ = "0.1.0"
