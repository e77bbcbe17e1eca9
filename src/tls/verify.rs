//! `ssl.verifyclient.depth`: rustls-webpki checks a client's chain but has no limit on its
//! length, so the verifier it builds is wrapped with one: a chain with more intermediate CA
//! certificates than the depth allows is refused, as OpenSSL's verify depth refuses it (depth
//! N allows the client's certificate, at most N intermediates, and a trust anchor).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// A client-certificate verifier that also limits the chain's depth.
#[derive(Debug)]
pub struct DepthLimited {
    inner: Arc<dyn ClientCertVerifier>,
    depth: usize,
    /// The trusted CAs: a client that sends one along with its chain has not made the chain
    /// longer by it.
    roots: Vec<CertificateDer<'static>>,
}

impl DepthLimited {
    pub fn new(
        inner: Arc<dyn ClientCertVerifier>,
        depth: u32,
        roots: Vec<CertificateDer<'static>>,
    ) -> DepthLimited {
        DepthLimited {
            inner,
            depth: depth as usize,
            roots,
        }
    }
}

/// Why a chain was refused, for the log.
#[derive(Debug)]
struct TooDeep;

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("certificate chain longer than ssl.verifyclient.depth allows")
    }
}

impl std::error::Error for TooDeep {}

impl ClientCertVerifier for DepthLimited {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        // Counted from what the client sent: at least as strict as OpenSSL, which counts the
        // chain it built (a client sending spare certificates may be refused here).
        let chain = intermediates
            .iter()
            .filter(|c| !self.roots.iter().any(|r| r.as_ref() == c.as_ref()))
            .count();
        if chain > self.depth {
            return Err(Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(TooDeep)),
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
