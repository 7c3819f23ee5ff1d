"""Parent notifications: what to say (``messages``), whether and when to say it
(``preferences``), and the channels that carry it (``channel``, ``channels``).

The outbox dispatcher builds on these: per outbox row it calls ``preferences.decide``, renders
with ``messages.render``, hands a ``channel.Outgoing`` to a channel made by
``channels.build_channels`` and acts on the ``channel.Delivery`` it gets back.
"""
