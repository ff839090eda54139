"""Builders for files that carry provenance metadata (C2PA, PNG text, XMP, EXIF)."""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib

from PIL import Image, PngImagePlugin

from .conftest import noise_image

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def jpeg_bytes(img: Image.Image | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    (img or noise_image(96, 64, 3)).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """Insert one marker segment right after SOI."""
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def xmp_packet(source_type: str) -> str:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}"/></rdf:RDF></x:xmpmeta>'
    )


def jpeg_with_xmp(source_type: str = "trainedAlgorithmicMedia") -> bytes:
    payload = b"http://ns.adobe.com/xap/1.0/\0" + xmp_packet(source_type).encode()
    return with_segment(jpeg_bytes(), 0xE1, payload)


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value, zip=True) if len(value) > 200 else info.add_text(key, value)
    buf = io.BytesIO()
    noise_image(80, 60, 4).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming a huge greyscale image, with a tiny IDAT: opening it is
    cheap, decoding it would need width*height bytes."""

    def chunk(ctype: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def c2pa_signed_jpeg(source_type: str = "trainedAlgorithmicMedia", generator: str = "GlassTestGen") -> bytes:
    """A JPEG with a real, signed C2PA manifest (throwaway CA + signer made on the fly)."""
    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "glass tests")])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, pub, is_ca):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("glass test CA"))
             .public_key(pub).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
             .add_extension(usage(not is_ca), critical=True))
        if not is_ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                 .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
        return b.sign(ca_key, hashes.SHA256())

    pem = b"".join(c.public_bytes(serialization.Encoding.PEM)
                   for c in (cert("glass test signer", key.public_key(), False), cert("glass test CA", ca_key.public_key(), True)))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", pem, key_pem, None))
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "generated.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}]}}],
    }
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg_bytes()), out)
    return out.getvalue()
