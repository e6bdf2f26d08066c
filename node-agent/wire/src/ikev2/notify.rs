//! The Notify payload (RFC 7296 section 3.10) and its message types (section 3.10.1 and the
//! IANA "IKEv2 Notify Message Types" registry).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Protocol ID  |   SPI Size    |      Notify Message Type      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                Security Parameter Index (SPI)                 ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       Notification Data                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::ProtocolId;
use super::cursor::{Reader, Writer};
use super::payload::Body;
use crate::{Error, Result};

enum_with_unknown! {
    /// Notify message type (RFC 7296 section 3.10.1; IANA "IKEv2 Notify Message Types").
    /// Types below 16384 are errors, the others status.
    pub enum NotifyType(u16) {
        /// UNSUPPORTED_CRITICAL_PAYLOAD; data: the payload type.
        UnsupportedCriticalPayload = 1,
        /// INVALID_IKE_SPI.
        InvalidIkeSpi = 4,
        /// INVALID_MAJOR_VERSION.
        InvalidMajorVersion = 5,
        /// INVALID_SYNTAX.
        InvalidSyntax = 7,
        /// INVALID_MESSAGE_ID.
        InvalidMessageId = 9,
        /// INVALID_SPI.
        InvalidSpi = 11,
        /// NO_PROPOSAL_CHOSEN.
        NoProposalChosen = 14,
        /// INVALID_KE_PAYLOAD; data: the accepted DH group.
        InvalidKePayload = 17,
        /// AUTHENTICATION_FAILED.
        AuthenticationFailed = 24,
        /// SINGLE_PAIR_REQUIRED.
        SinglePairRequired = 34,
        /// NO_ADDITIONAL_SAS.
        NoAdditionalSas = 35,
        /// INTERNAL_ADDRESS_FAILURE.
        InternalAddressFailure = 36,
        /// FAILED_CP_REQUIRED.
        FailedCpRequired = 37,
        /// TS_UNACCEPTABLE.
        TsUnacceptable = 38,
        /// INVALID_SELECTORS.
        InvalidSelectors = 39,
        /// UNACCEPTABLE_ADDRESSES (RFC 4555).
        UnacceptableAddresses = 40,
        /// UNEXPECTED_NAT_DETECTED (RFC 4555).
        UnexpectedNatDetected = 41,
        /// TEMPORARY_FAILURE.
        TemporaryFailure = 43,
        /// CHILD_SA_NOT_FOUND.
        ChildSaNotFound = 44,
        /// INITIAL_CONTACT.
        InitialContact = 16384,
        /// SET_WINDOW_SIZE.
        SetWindowSize = 16385,
        /// ADDITIONAL_TS_POSSIBLE.
        AdditionalTsPossible = 16386,
        /// IPCOMP_SUPPORTED.
        IpcompSupported = 16387,
        /// NAT_DETECTION_SOURCE_IP; data: a SHA-1 hash (RFC 7296 section 2.23).
        NatDetectionSourceIp = 16388,
        /// NAT_DETECTION_DESTINATION_IP; data: a SHA-1 hash (RFC 7296 section 2.23).
        NatDetectionDestinationIp = 16389,
        /// COOKIE (RFC 7296 section 2.6).
        Cookie = 16390,
        /// USE_TRANSPORT_MODE.
        UseTransportMode = 16391,
        /// HTTP_CERT_LOOKUP_SUPPORTED.
        HttpCertLookupSupported = 16392,
        /// REKEY_SA.
        RekeySa = 16393,
        /// ESP_TFC_PADDING_NOT_SUPPORTED.
        EspTfcPaddingNotSupported = 16394,
        /// NON_FIRST_FRAGMENTS_ALSO.
        NonFirstFragmentsAlso = 16395,
        /// MOBIKE_SUPPORTED (RFC 4555).
        MobikeSupported = 16396,
        /// ADDITIONAL_IP4_ADDRESS (RFC 4555).
        AdditionalIp4Address = 16397,
        /// ADDITIONAL_IP6_ADDRESS (RFC 4555).
        AdditionalIp6Address = 16398,
        /// NO_ADDITIONAL_ADDRESSES (RFC 4555).
        NoAdditionalAddresses = 16399,
        /// UPDATE_SA_ADDRESSES (RFC 4555).
        UpdateSaAddresses = 16400,
        /// COOKIE2 (RFC 4555).
        Cookie2 = 16401,
        /// NO_NATS_ALLOWED (RFC 4555).
        NoNatsAllowed = 16402,
        /// AUTH_LIFETIME (RFC 4478).
        AuthLifetime = 16403,
        /// MULTIPLE_AUTH_SUPPORTED (RFC 4739).
        MultipleAuthSupported = 16404,
        /// ANOTHER_AUTH_FOLLOWS (RFC 4739).
        AnotherAuthFollows = 16405,
        /// REDIRECT_SUPPORTED (RFC 5685).
        RedirectSupported = 16406,
        /// REDIRECT (RFC 5685); see [`Notification::redirect`].
        Redirect = 16407,
        /// REDIRECTED_FROM (RFC 5685).
        RedirectedFrom = 16408,
        /// IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 section 2.3).
        Ikev2FragmentationSupported = 16430,
        /// SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4); data: 2-byte hash algorithm IDs.
        SignatureHashAlgorithms = 16431,
    }
}

impl NotifyType {
    /// Whether the type is an error (below 16384, RFC 7296 section 3.10.1).
    pub fn is_error(self) -> bool {
        u16::from(self) < 16384
    }
}

/// The body of a Notify payload (RFC 7296 section 3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Notification<'a> {
    /// The SA the notification is about; [`ProtocolId::None`] without SPI.
    pub protocol_id: ProtocolId,
    /// The SPI of that SA, often empty; its length is the SPI Size field.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub spi: &'a [u8],
    /// The message type.
    pub notify_type: NotifyType,
    /// Type-specific data.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub data: &'a [u8],
}

/// The data of a REDIRECT notification (RFC 5685 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Redirect<'a> {
    /// Gateway identity type: 1 IPv4, 2 IPv6, 3 FQDN (RFC 5685 section 10).
    pub gateway_type: u8,
    /// The new responder gateway identity.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub gateway: &'a [u8],
    /// The initiator's nonce echoed in an IKE_SA_INIT response; empty otherwise.
    #[serde(serialize_with = "crate::hex::serialize")]
    pub nonce: &'a [u8],
}

impl<'a> Notification<'a> {
    /// A notification without SPI.
    pub const fn new(notify_type: NotifyType, data: &'a [u8]) -> Self {
        Notification {
            protocol_id: ProtocolId::None,
            spi: &[],
            notify_type,
            data,
        }
    }

    /// Reads the data of a REDIRECT notification (RFC 5685 section 8).
    ///
    /// # Errors
    /// [`Error::Malformed`] for another type; [`Error::Truncated`] when the gateway identity
    /// is longer than the data.
    pub fn redirect(&self) -> Result<Redirect<'a>> {
        if self.notify_type != NotifyType::Redirect {
            return Err(Error::Malformed);
        }
        let mut r = Reader::new(self.data);
        let gateway_type = r.u8()?;
        let len = usize::from(r.u8()?);
        let gateway = r.bytes(len)?;
        Ok(Redirect {
            gateway_type,
            gateway,
            nonce: r.rest(),
        })
    }
}

impl<'a> Body<'a> for Notification<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let protocol_id = ProtocolId::from(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let notify_type = NotifyType::from(r.u16()?);
        let spi = r.bytes(spi_size).map_err(|_| Error::BadLength)?;
        Ok(Notification {
            protocol_id,
            spi,
            notify_type,
            data: r.rest(),
        })
    }

    fn body_len(&self) -> usize {
        4 + self.spi.len() + self.data.len()
    }

    fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| Error::Unrepresentable)?;
        let mut w = Writer::new(buf);
        w.u8(self.protocol_id.into());
        w.u8(spi_size);
        w.u16(self.notify_type.into());
        w.bytes(self.spi);
        w.bytes(self.data);
        Ok(())
    }
}
