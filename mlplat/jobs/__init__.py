"""Training jobs after launch: why one cannot start, following one on EKS, restarting a gang, listing them all."""
