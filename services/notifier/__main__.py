"""``dmzwatch notifier``."""

from dmzwatch.notifier.app import main

main()
