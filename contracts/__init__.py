"""Facts the platform's layers share, defined once: the bucket layout, registry aliases, capture records, results.

Standard library only: the training and serving images carry this package next to their own code, and every other
layer (components, policies, the tools) may import it.
"""
