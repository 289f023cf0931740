"""The cost estimator: monthly cost of a stack's plan at idle and at peak, from a dated price table in the project."""
