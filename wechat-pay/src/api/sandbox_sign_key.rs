//! `{prefix}/pay/getsignkey`: the sandbox's signing key. The client calls this itself in sandbox
//! mode; it is signed with the real API key and its reply is the only unsigned one.

use super::{Endpoint, Envelope, FromReply, Request};
use crate::{ApiKey, Error, Params, SignType};

/// The sandbox key request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxSignKey;

impl Endpoint for SandboxSignKey {
    const PATH: &'static str = "/pay/getsignkey";
    const SIGN_TYPE: Option<SignType> = Some(SignType::Md5);
    const ENVELOPE: Envelope = Envelope::SignKey;

    fn write_params(&self, _p: &mut Params) {}
}

impl Request for SandboxSignKey {
    type Response = SandboxSignKeyResponse;
}

/// The sandbox key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxSignKeyResponse {
    /// `sandbox_signkey`.
    pub sandbox_signkey: ApiKey,
}

impl FromReply for SandboxSignKeyResponse {
    const SIGNED: bool = false;

    fn from_params(p: Params) -> Result<Self, Error> {
        Ok(SandboxSignKeyResponse {
            sandbox_signkey: ApiKey::new(p.required("sandbox_signkey")?),
        })
    }
}
