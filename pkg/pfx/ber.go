package pfx

// PKCS#12 allows BER, and writers use it: NSS (Firefox, pk12util), Java and macOS encode
// with indefinite lengths and split OCTET STRINGs into segments. encoding/asn1 and
// cryptobyte read only DER lengths, so each level is normalised first. The contents of
// OCTET STRINGs are kept byte for byte, which keeps the MAC valid: it covers the
// AuthenticatedSafe as written, and that is the (concatenated) content of one OCTET STRING.

const maxBERDepth = 32

const (
	tagOctetStringPrimitive   = 0x04
	tagOctetStringConstructed = 0x24
)

// berToDER re-encodes one BER element, and everything inside it, with definite minimal
// lengths, and turns constructed OCTET STRINGs into primitive ones. It leaves SET order and
// primitive contents alone. DER input comes back unchanged.
func berToDER(in []byte) ([]byte, error) {
	tag, content, rest, err := berElement(in, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("%d bytes of trailing data", len(rest))
	}
	return appendElement(nil, tag, content), nil
}

// berElement parses one element of in and returns its tag, its contents re-encoded as DER
// and what follows it.
func berElement(in []byte, depth int) (tag byte, content, rest []byte, err error) {
	if depth > maxBERDepth {
		return 0, nil, nil, malformed("ASN.1 nested deeper than %d", maxBERDepth)
	}
	if len(in) < 2 {
		return 0, nil, nil, malformed("truncated ASN.1 element")
	}
	tag = in[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, malformed("ASN.1 high tag number form")
	}
	constructed := tag&0x20 != 0
	body := in[1:]
	var length int
	indefinite := false
	switch b := body[0]; {
	case b < 0x80:
		length, body = int(b), body[1:]
	case b == 0x80:
		indefinite, body = true, body[1:]
	default:
		n := int(b & 0x7f)
		if n > 4 || len(body) < 1+n {
			return 0, nil, nil, malformed("bad ASN.1 length")
		}
		for _, c := range body[1 : 1+n] {
			length = length<<8 | int(c)
		}
		body = body[1+n:]
	}
	if !constructed {
		if indefinite {
			return 0, nil, nil, malformed("indefinite length on a primitive ASN.1 element")
		}
		if length > len(body) {
			return 0, nil, nil, malformed("truncated ASN.1 element")
		}
		return tag, body[:length], body[length:], nil
	}
	var inner []byte
	if indefinite {
		inner = body
	} else {
		if length > len(body) {
			return 0, nil, nil, malformed("truncated ASN.1 element")
		}
		inner, rest = body[:length], body[length:]
	}
	for {
		if indefinite {
			if len(inner) < 2 {
				return 0, nil, nil, malformed("indefinite-length ASN.1 element without end")
			}
			if inner[0] == 0 && inner[1] == 0 {
				rest = inner[2:]
				break
			}
		} else if len(inner) == 0 {
			break
		}
		childTag, childContent, childRest, err := berElement(inner, depth+1)
		if err != nil {
			return 0, nil, nil, err
		}
		inner = childRest
		if tag == tagOctetStringConstructed {
			if childTag != tagOctetStringPrimitive {
				return 0, nil, nil, malformed("segment of a constructed OCTET STRING is not an OCTET STRING")
			}
			content = append(content, childContent...)
			continue
		}
		content = appendElement(content, childTag, childContent)
	}
	if tag == tagOctetStringConstructed {
		tag = tagOctetStringPrimitive
	}
	return tag, content, rest, nil
}

// appendElement appends tag, the DER length of content and content to out.
func appendElement(out []byte, tag byte, content []byte) []byte {
	out = append(out, tag)
	switch n := len(content); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 1<<8:
		out = append(out, 0x81, byte(n))
	case n < 1<<16:
		out = append(out, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		out = append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, content...)
}
