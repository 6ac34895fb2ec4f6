//! Serving certificates of HTTPS listeners, from `kubernetes.io/tls` Secrets (PEM `tls.crt`
//! chain and `tls.key`, base64 in `data` as the API server stores them).

use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde_json::Value;

fn field(secret: &Value, key: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Secret has no {key}"))?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| format!("Secret {key} is not base64"))
}

/// The key pair of a TLS Secret, ready for rustls. Errors never include key material.
pub(super) fn certified_key(secret: &Value) -> Result<Arc<CertifiedKey>, String> {
    let crt = field(secret, "tls.crt")?;
    let key = field(secret, "tls.key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<_, _>>()
        .map_err(|_| "tls.crt is not a PEM certificate chain".to_string())?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|_| "tls.key is not a PEM private key".to_string())?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| "tls.key is not a supported private key".to_string())?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loads_a_generated_key_pair_and_rejects_garbage() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["example.org".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        let secret =
            json!({"data": {"tls.crt": b64(cert.pem()), "tls.key": b64(key.serialize_pem())}});
        assert!(certified_key(&secret).is_ok());
        let bad =
            json!({"data": {"tls.crt": b64("nope".into()), "tls.key": b64(key.serialize_pem())}});
        assert!(certified_key(&bad).unwrap_err().contains("tls.crt"));
    }
}
