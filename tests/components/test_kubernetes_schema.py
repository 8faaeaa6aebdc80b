from tests.conftest import planned
from tooling.manifests import manifests, schema_errors


def test_every_kubernetes_object_validates_against_the_openapi_schema(example_stack: str) -> None:
    objects = manifests(planned(example_stack))
    assert objects, "the plan has no Kubernetes objects"
    errors = [error for obj in objects for error in schema_errors(obj)]
    assert errors == []


def test_schema_check_catches_a_misspelled_field() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hardd": {}},
    }
    assert schema_errors(bad) == [
        "ResourceQuota/q: Additional properties are not allowed ('hardd' was unexpected) at spec"
    ]
