"""Hardened XML parsing shared by the libvirt parsers.

libvirt's XML comes from a daemon that may be remote, and domain XML carries
text that tenants influence (names, metadata), so it is parsed with defusedxml:
no DTDs, no entity expansion, no network access.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et


class InvalidXML(ValueError):
    """XML from libvirt that cannot be parsed or lacks what we need."""


def parse(xml: str, what: str) -> Element:
    """The root element of ``xml``; ``what`` names the document in errors."""
    if not isinstance(xml, (str, bytes)):
        raise InvalidXML(f"{what}: expected an XML string, got {type(xml).__name__}")
    try:
        return safe_et.fromstring(xml, forbid_dtd=True)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise InvalidXML(f"{what}: {exc}") from exc


def int_attr(elem: Element, name: str, what: str, base: int = 10) -> int:
    text = elem.get(name)
    if text is None:
        raise InvalidXML(f"{what}: <{elem.tag}> has no {name!r} attribute")
    return to_int(text, f"{what}: <{elem.tag} {name}>", base)


def to_int(text, what: str, base: int = 10) -> int:
    try:
        return int((text or '').strip(), base)
    except ValueError as exc:
        raise InvalidXML(f"{what}: {text!r} is not an integer") from exc
