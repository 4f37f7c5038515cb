"""A development collector for the Snowplow tracker protocol (Snowplow Micro's role).

``mapping`` is the pure part (tracker parameters -> enriched TSV); ``server`` the aiohttp edge;
``run`` starts it with a Kafka producer. Production uses Snowplow's Collector and Enrich.
"""
