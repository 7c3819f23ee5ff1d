"""The gate agent: camera, inference loop, card readers, outbox and MQTT client (imports only
broker and models)."""
