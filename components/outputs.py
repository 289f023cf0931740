"""The stack's outputs, typed: the platform fills this model and the tools (`train`, `release`, `monitor`) read it.

Field names are Python's; each field's alias is the output name (`pulumi stack output bucketName`). Nothing else
spells an output name: the program exports `StackOutputs.exports(...)`, and the tools validate what a stack holds
with `StackOutputs.model_validate(...)`.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StackOutputs(BaseModel):
    """What `MlPlatform.stack_outputs()` exports (cluster keys only when the stack has a cluster)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    environment: str
    region: str
    vpc_id: str = Field(alias="vpcId")
    private_subnet_ids: list[str] = Field(alias="privateSubnetIds", min_length=1)
    bucket_name: str = Field(alias="bucketName", min_length=3)
    bucket_arn: str = Field(alias="bucketArn")
    kms_key_arn: str = Field(alias="kmsKeyArn")
    tracking_server_arn: str = Field(alias="trackingServerArn")
    tracking_server_url: str = Field(alias="trackingServerUrl")
    training_role_arn: str = Field(alias="trainingRoleArn")
    serving_role_arn: str = Field(alias="servingRoleArn")
    workload_security_group_id: str = Field(alias="workloadSecurityGroupId")
    endpoint_names: list[str] = Field(alias="endpointNames")
    budget_name: str = Field(alias="budgetName")
    drift_alarm_topic_arns: list[str] = Field(default_factory=list, alias="driftAlarmTopicArns")
    cluster_name: str | None = Field(None, alias="clusterName")
    cluster_endpoint: str | None = Field(None, alias="clusterEndpoint")
    oidc_provider_arn: str | None = Field(None, alias="oidcProviderArn")
    team_namespaces: list[str] | None = Field(None, alias="teamNamespaces")

    @classmethod
    def output_name(cls, field: str) -> str:
        """The output name of a field (`bucket_name` -> `bucketName`)."""
        return cls.model_fields[field].alias or field

    @classmethod
    def required_outputs(cls) -> list[str]:
        """The output names every stack exports, in the model's order."""
        return [cls.output_name(name) for name, info in cls.model_fields.items() if info.is_required()]

    @classmethod
    def exports(cls, **values: Any) -> dict[str, Any]:
        """Output name -> value for the fields given by Python name (values may be `pulumi.Output`s).

        TypeError when a name is not a field or a required field is missing: the program cannot export a stack
        the tools would refuse.
        """
        unknown = sorted(set(values) - set(cls.model_fields))
        missing = [name for name, info in cls.model_fields.items() if info.is_required() and name not in values]
        if unknown or missing:
            raise TypeError(f"stack outputs: unknown {unknown}, missing {missing}")
        return {cls.output_name(name): values[name] for name in cls.model_fields if name in values}
