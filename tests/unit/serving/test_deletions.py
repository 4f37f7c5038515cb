"""Delete requests wait for their marker to be applied, and only for their own."""

from __future__ import annotations

from signals_stream.serving.deletions import DeletionRequests


async def test_a_request_learns_whether_its_row_existed_and_others_are_ignored() -> None:
    requests = DeletionRequests()
    with requests.expecting("mine") as applied:
        requests.applied("someone-else", True)
        assert not applied.done()
        requests.applied("mine", False)
        assert applied.done() and applied.result() is False
    requests.applied("mine", True)  # late: nobody waits any more, nothing breaks
