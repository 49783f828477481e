//! A test CA and a certificate it signed, for servers on loopback (rcgen).

/// PEM texts: the CA's certificate, the server's certificate and its key.
pub struct Pki {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// A new test CA: its certificate, and the issuer that signs with it.
pub fn ca() -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Lookout test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    (ca, rcgen::Issuer::new(ca_params, ca_key))
}

/// A CA, and a certificate for `names` (DNS names or IP addresses) it signed.
pub fn pki(names: &[&str]) -> Pki {
    let (ca, issuer) = ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    /// Writes the three files into `dir`: (CA, certificate, key) paths.
    pub fn write(&self, dir: &std::path::Path) -> [std::path::PathBuf; 3] {
        let files = ["ca.pem", "cert.pem", "key.pem"].map(|n| dir.join(n));
        for (file, text) in files.iter().zip([&self.ca, &self.cert, &self.key]) {
            std::fs::write(file, text).unwrap();
        }
        files
    }
}
