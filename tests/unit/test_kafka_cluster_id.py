"""The local Kafka's cluster id never starts with "-" (the storage tool would read it as an option)."""

from __future__ import annotations

import base64
from unittest import mock

from qaflow.devstack import kafka


def test_cluster_id_never_starts_with_a_dash() -> None:
    dash_first = mock.Mock(bytes=b"\xf8" + bytes(15))  # urlsafe base64 of 0xf8... begins with "-"
    assert base64.urlsafe_b64encode(dash_first.bytes).startswith(b"-")
    fine = mock.Mock(bytes=bytes(16))
    with mock.patch.object(kafka.uuid, "uuid4", side_effect=[dash_first, dash_first, fine]):
        assert kafka.new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


def test_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {kafka.new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
