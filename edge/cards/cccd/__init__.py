"""The chip citizen ID card (CCCD, "căn cước") and other ICAO 9303 eMRTDs, read over any APDU
transport (the PN532's InDataExchange in production).

Start at :class:`~edge.cards.cccd.reader.CccdReader`; the modules below it follow the layers of
the specification: ``mrz`` (BAC key), ``apdu`` (ISO 7816-4), ``bac`` and ``secure_messaging``
(access control), ``tlv``/``lds`` (files), ``sod``/``passive_auth`` (authenticity), ``pace``
(what EF.CardAccess offers) and ``qr`` (the printed QR code).
"""
