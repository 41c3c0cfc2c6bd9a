import pytest

from tests.interactions.helpers import make_world


@pytest.fixture
def world():
    return make_world()
