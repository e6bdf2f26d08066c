//! The authentication extension (RFC 2332 section 5.3.4) in Cisco's cleartext layout:
//! 4-byte type 1 then the unpadded password, compared byte for byte as FRR nhrpd does
//! (`nhrp_peer.c nhrp_connection_authorized`).

use dmvpn_wire::nhrp::{AUTH_CLEARTEXT, Extension, ExtensionBody};

use crate::config::Password;
use crate::error::DropReason;

/// Checks the authentication of a received message, whose first authentication extension
/// is `ext`, against the configured password.
///
/// Without a password every message passes (Cisco and nhrpd without `ip nhrp
/// authentication`). With one, the message must carry an authentication extension whose
/// whole value (type and data) equals `00 00 00 01` + password.
///
/// # Errors
/// [`DropReason::AuthenticationMissing`] or [`DropReason::AuthenticationMismatch`].
pub fn check(password: Option<&Password>, ext: Option<Extension<'_>>) -> Result<(), DropReason> {
    let Some(password) = password else {
        return Ok(());
    };
    match ext {
        None => Err(DropReason::AuthenticationMissing),
        Some(ext) => match ext.body {
            ExtensionBody::Authentication { auth_type, data }
                if auth_type == AUTH_CLEARTEXT && data.expose() == password.expose() =>
            {
                Ok(())
            }
            _ => Err(DropReason::AuthenticationMismatch),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmvpn_wire::nhrp::AuthData;

    #[test]
    fn byte_exact() {
        let pw = Password::new(b"test123").unwrap();
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(
            check(Some(&pw), None),
            Err(DropReason::AuthenticationMissing)
        );
        let good = Extension::cleartext_password(b"test123");
        assert_eq!(check(Some(&pw), Some(good)), Ok(()));
        for bad in [&b"test12"[..], b"test1234", b"TEST123", b"test123\0"] {
            let ext = Extension::cleartext_password(bad);
            assert_eq!(
                check(Some(&pw), Some(ext)),
                Err(DropReason::AuthenticationMismatch)
            );
        }
        let other_type = Extension::new(ExtensionBody::Authentication {
            auth_type: 2,
            data: AuthData::new(b"test123"),
        });
        assert_eq!(
            check(Some(&pw), Some(other_type)),
            Err(DropReason::AuthenticationMismatch)
        );
    }
}
