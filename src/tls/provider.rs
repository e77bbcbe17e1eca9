//! The crypto provider lightd's TLS uses: rustls's *ring* provider cut down to what lighttpd's
//! `ssl.*` keys can ask for, so that nothing else is compiled in (see README "TLS" and
//! /work/notes/tls-crypto.md for the sizes and speeds of the providers measured).
//!
//! Kept: TLS 1.2 and 1.3; AES-128/256-GCM and ChaCha20-Poly1305; X25519, P-256 and P-384 key
//! exchange; RSA and ECDSA (P-256, P-384) server keys; RSA (PKCS#1 and PSS) and ECDSA
//! signatures on client certificates. Left out: Ed25519 keys and signatures (no browser
//! offers them for TLS, and OpenSSL's `ssl.pemfile` users have RSA or ECDSA certificates).

use std::sync::Arc;

use rustls::crypto::ring as r;
use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use rustls::SignatureScheme;
use webpki::ring as alg;

/// The cipher suites, TLS 1.3's first, each list in rustls's order of preference.
static SUITES: &[rustls::SupportedCipherSuite] = &[
    r::cipher_suite::TLS13_AES_256_GCM_SHA384,
    r::cipher_suite::TLS13_AES_128_GCM_SHA256,
    r::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    r::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    r::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    r::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    r::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    r::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    r::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// Signatures lightd checks: client certificates (`ssl.verifyclient.*`) and their chains.
/// Ed25519 is not among them: that leaves ring's Ed25519 verifier out of the binary.
static SIG_ALGS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    // TLS 1.2 does not tie an ECDSA scheme to a curve, hence two verifiers for each.
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        ),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[alg::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[alg::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[alg::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// Server keys: RSA, then ECDSA (P-256, P-384). ring's `any_supported_type` would also try
/// Ed25519, which keeps its Ed25519 signer in the binary.
#[derive(Debug)]
struct Keys;

impl KeyProvider for Keys {
    fn load_private_key(
        &self,
        key_der: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        if let Ok(rsa) = r::sign::RsaSigningKey::new(&key_der) {
            return Ok(Arc::new(rsa));
        }
        r::sign::any_ecdsa_type(&key_der).map_err(|_| {
            rustls::Error::General("the private key is neither RSA nor ECDSA (P-256, P-384)".into())
        })
    }
}

/// The system's randomness through ring (getrandom), as rustls's ring provider has it. Ours,
/// because taking rustls's from `ring::default_provider()` would keep that provider's tables,
/// Ed25519 among them, in the binary.
#[derive(Debug)]
struct Random;

impl SecureRandom for Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
            .map_err(|_| GetRandomFailed)
    }
}

/// The provider every rustls config in lightd is built with (server configs, the client
/// certificate verifier, the ticketer's randomness).
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: SUITES.to_vec(),
        kx_groups: vec![
            r::kx_group::X25519,
            r::kx_group::SECP256R1,
            r::kx_group::SECP384R1,
        ],
        signature_verification_algorithms: SIG_ALGS,
        secure_random: &Random,
        key_provider: &Keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P384_SHA384_ASN1_SIGNING};
    use rustls::pki_types::PrivatePkcs8KeyDer;

    fn load(pkcs8: &[u8]) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
        provider().key_provider.load_private_key(der)
    }

    #[test]
    fn ecdsa_keys_load_and_ed25519_keys_do_not() {
        let rng = SystemRandom::new();
        let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
            .map_err(|_| "keygen");
        let key = load(p384.as_ref().map(|d| d.as_ref()).unwrap_or_default());
        assert!(matches!(
            key.map(|k| k.algorithm()),
            Ok(rustls::SignatureAlgorithm::ECDSA)
        ));
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "keygen");
        assert!(load(ed.as_ref().map(|d| d.as_ref()).unwrap_or_default()).is_err());
        assert!(load(b"not a key").is_err());
    }

    #[test]
    fn only_the_algorithms_lightd_needs() {
        let p = provider();
        let has =
            |v: rustls::ProtocolVersion| p.cipher_suites.iter().any(|s| s.version().version == v);
        assert!(has(rustls::ProtocolVersion::TLSv1_2) && has(rustls::ProtocolVersion::TLSv1_3));
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert!(groups.contains(&rustls::NamedGroup::X25519));
        assert!(groups.contains(&rustls::NamedGroup::secp256r1));
        let schemes = p.signature_verification_algorithms.supported_schemes();
        assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP384_SHA384));
        assert!(!schemes.contains(&SignatureScheme::ED25519));
        assert!(p.secure_random.fill(&mut [0u8; 32]).is_ok());
    }
}
