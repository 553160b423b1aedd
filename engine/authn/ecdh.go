package authn

import "crypto/ecdh"

func ecdhP256(pt []byte) (*ecdh.PublicKey, error) { return ecdh.P256().NewPublicKey(pt) }
