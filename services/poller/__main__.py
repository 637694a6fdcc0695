"""``dmzwatch poller``."""

from dmzwatch.poller.app import main

main()
