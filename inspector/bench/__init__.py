"""``inspector bench``: the end-to-end benchmark beside the ultralytics baseline.

``dataset`` writes the fixed image sets, ``child`` runs one measurement in its own
process (so that peak memory and cold start belong to that measurement alone), and
``runner`` runs them side by side and prints the ratios.
"""
