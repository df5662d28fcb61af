//! Which certificate authorities cosell's HTTPS clients trust: one explicit setting, made at start-up
//! and handed to every client that is built (engine, Entra, webhook certificates, Salesforce OAuth,
//! sign-in, the sandbox link), never a process-wide switch.
//!
//! Outside the sandbox it is [`TlsTrust::public_roots`]: the public web PKI that reqwest's `rustls-tls`
//! feature builds in (Mozilla's roots, `webpki-roots`), nothing added. In sandbox mode only
//! (`--sandbox`, `--sandbox-url`) it also trusts the sandbox's own CA, which issued the certificate its
//! emulators serve HTTPS with.

use std::fmt;

#[derive(Clone, Default)]
pub struct TlsTrust {
    /// Trusted besides the public roots: the sandbox's CA, in sandbox mode only.
    extra_roots: Vec<reqwest::Certificate>,
}

impl TlsTrust {
    /// The public roots only: production.
    pub fn public_roots() -> TlsTrust {
        TlsTrust::default()
    }

    /// The public roots and the sandbox's CA (PEM, one or more certificates).
    pub fn with_sandbox_ca(pem: &str) -> Result<TlsTrust, String> {
        let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("the sandbox's CA is not PEM: {e}"))?;
        if roots.is_empty() {
            return Err("the sandbox's CA is empty: no PEM certificate in it".into());
        }
        Ok(TlsTrust { extra_roots: roots })
    }

    /// True when something besides the public roots is trusted (sandbox mode).
    pub fn trusts_sandbox(&self) -> bool {
        !self.extra_roots.is_empty()
    }

    /// A client builder that trusts these roots; the caller adds its time-out and redirect policy.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        self.extra_roots
            .iter()
            .cloned()
            .fold(reqwest::Client::builder(), |b, root| {
                b.add_root_certificate(root)
            })
    }
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.trusts_sandbox() {
            write!(
                f,
                "TlsTrust(public roots + {} sandbox CA)",
                self.extra_roots.len()
            )
        } else {
            write!(f, "TlsTrust(public roots)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_trusts_the_public_roots_only() {
        let trust = TlsTrust::public_roots();
        assert!(!trust.trusts_sandbox());
        assert_eq!(format!("{trust:?}"), "TlsTrust(public roots)");
        trust.client_builder().build().expect("a client");
    }

    #[test]
    fn a_sandbox_ca_must_be_a_certificate() {
        assert!(TlsTrust::with_sandbox_ca("").is_err());
        assert!(TlsTrust::with_sandbox_ca("not a certificate").is_err());
    }
}
