import pytest


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """One frame/target cache for the whole session: the smoke teacher's targets are computed once."""
    return tmp_path_factory.mktemp("cache")
