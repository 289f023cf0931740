"""Cloud training launchers behind `mlplat train`: SageMaker, EKS, and registering what a job produced."""
