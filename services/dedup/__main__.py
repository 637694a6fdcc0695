"""``dmzwatch dedup``."""

from dmzwatch.dedup.app import main

main()
