"""The closest Python peer on the same events: Quix Streams computing a tumbling 1-minute
count + sum per user (re-keyed by ``domain_userid``), RocksDB state with changelogs.

Run by ``bench/bench_peers.py`` in its own virtualenv (quixstreams pins confluent-kafka):
    python quix_app.py BOOTSTRAP TOPIC EVENTS USER_FIELD VALUE_FIELD STATE_DIR
Prints one JSON line: events processed, seconds from the first to the last, CPU seconds.
"""

from __future__ import annotations

import json
import sys
import time

STARTED = time.perf_counter()  # before Quix's imports: start to first event

from quixstreams import Application  # noqa: E402
from quixstreams.dataframe.windows.aggregations import Count, Sum  # noqa: E402
from quixstreams.models.topics.manager import TopicManager  # noqa: E402

_derive = TopicManager.derive_topic_config


def _derive_without_retention(topics: list) -> object:  # type: ignore[type-arg]
    # The local broker (Tansu) describes topics without retention.ms, which Quix's group_by
    # requires to size its repartition topic; "-1" (infinite) is Kafka's own meaning of unset.
    for topic in topics:
        topic.broker_config.extra_config.setdefault("retention.ms", "-1")
    return _derive(topics)


TopicManager.derive_topic_config = staticmethod(_derive_without_retention)  # type: ignore[method-assign]


def main() -> None:
    bootstrap, topic_name, events, user_field, value_field, state_dir = sys.argv[1:7]
    expected, user_at, value_at = int(events), int(user_field), int(value_field)
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{int(time.time())}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        processing_guarantee="at-least-once",
    )
    topic = app.topic(topic_name, key_deserializer="bytes", value_deserializer="bytes")
    seen = {"count": 0, "first": 0.0, "last": 0.0}

    def parse(line: bytes) -> dict:
        if not seen["first"]:
            seen["first"] = time.perf_counter()
        fields = line.split(b"\t")
        raw = fields[value_at]
        return {"user": fields[user_at].decode(), "value": float(raw) if raw else 0.0}

    def done(_: object) -> None:
        seen["count"] += 1
        if seen["count"] >= expected:
            seen["last"] = time.perf_counter()
            app.stop()

    sdf = app.dataframe(topic).apply(parse)
    sdf = sdf.group_by("user")
    sdf = sdf.tumbling_window(60_000).agg(count=Count(), total=Sum("value")).current()
    sdf.update(done)
    cpu = time.process_time()
    app.run()
    print(
        json.dumps(
            {
                "events": seen["count"],
                "seconds": seen["last"] - seen["first"],
                "cpu_seconds": time.process_time() - cpu,
                "start_to_first_s": seen["first"] - STARTED,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
