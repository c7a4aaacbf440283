"""RSA keys: public Data is DER SubjectPublicKeyInfo, private Data is PKCS#1 DER, signatures
are RSASSA-PKCS1-v1_5 over SHA-256. Sizes outside 2048..8192 bits are refused on parse,
before any signature work (a huge modulus would make every verification expensive)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rapidp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from rapidp2p.exceptions import KeyError_

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
_PUBLIC_EXPONENT = 65537
# Upper bounds on the DER of an 8192-bit key (SPKI about 1.1 KB, PKCS#1 about 4.7 KB), checked
# before parsing so oversized input costs nothing.
_MAX_PUBLIC_DER = 1200
_MAX_PRIVATE_DER = 5000


def check_rsa_bits(bits: int) -> None:
    """Raises KeyError_ unless 2048 <= bits <= 8192."""
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise KeyError_(
            f"RSA key of {bits} bits is outside the accepted {MIN_RSA_BITS}..{MAX_RSA_BITS}"
        )


class RsaPublicKey(PublicKey):
    """An RSA public key. ``raw()`` returns the DER exactly as parsed, so peer IDs computed
    from it match the ones the key's owner computes."""

    key_type = KeyType.RSA

    def __init__(self, key: rsa.RSAPublicKey, der: bytes | None = None) -> None:
        check_rsa_bits(key.key_size)
        self._key = key
        self._raw = der or key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_raw(cls, data: bytes) -> RsaPublicKey:
        """Parses a DER SubjectPublicKeyInfo and checks the modulus size."""
        if len(data) > _MAX_PUBLIC_DER:
            raise KeyError_(
                f"RSA public key DER of {len(data)} bytes is larger than a {MAX_RSA_BITS}-bit key"
            )
        try:
            key = serialization.load_der_public_key(bytes(data))
        except (ValueError, TypeError) as e:
            raise KeyError_(f"invalid RSA public key DER: {e}") from e
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyError_(f"RSA public key DER holds a {type(key).__name__}")
        return cls(key, bytes(data))

    @property
    def bits(self) -> int:
        """The modulus size."""
        return self._key.key_size

    def raw(self) -> bytes:
        return self._raw

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != (self._key.key_size + 7) // 8:
            return False
        try:
            self._key.verify(bytes(signature), bytes(data), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


class RsaPrivateKey(PrivateKey):
    """An RSA private key."""

    key_type = KeyType.RSA

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        check_rsa_bits(key.key_size)
        self._key = key
        self._public = RsaPublicKey(key.public_key())

    @classmethod
    def generate(cls, bits: int = MIN_RSA_BITS) -> RsaPrivateKey:
        """A fresh key with e = 65537 (slow: seconds for 4096 bits and up)."""
        check_rsa_bits(bits)
        return cls(rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=bits))

    @classmethod
    def from_raw(cls, data: bytes) -> RsaPrivateKey:
        """Parses PKCS#1 ``RSAPrivateKey`` DER and checks the modulus size."""
        if len(data) > _MAX_PRIVATE_DER:
            raise KeyError_(
                f"RSA private key DER of {len(data)} bytes is larger than a {MAX_RSA_BITS}-bit key"
            )
        try:
            key = serialization.load_der_private_key(bytes(data), password=None)
        except (ValueError, TypeError) as e:
            raise KeyError_(f"invalid RSA private key DER: {e}") from e
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyError_(f"RSA private key DER holds a {type(key).__name__}")
        return cls(key)

    @property
    def bits(self) -> int:
        """The modulus size."""
        return self._key.key_size

    def public_key(self) -> RsaPublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data), padding.PKCS1v15(), hashes.SHA256())

    def raw(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
