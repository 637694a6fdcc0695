"""The dedup stage: drops repeats, passes on updates, and gives each article its story.

``stories`` holds the algorithm, ``keys`` every Redis key it writes (lifetimes, hash slots),
``signature`` the MinHash and its tuned parameters, ``outlets`` who counts as one outlet,
``cluster`` the offline ``dmzwatch cluster``.
"""
