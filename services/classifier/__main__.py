"""``dmzwatch classifier``."""

from dmzwatch.classifier.app import main

main()
