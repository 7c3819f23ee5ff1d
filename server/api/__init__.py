"""The REST API under ``/api/v1``: dependencies (:mod:`.deps`), request/response models
(:mod:`.schemas`), one router per resource (:mod:`.routes`), gathered by :mod:`.router`."""
