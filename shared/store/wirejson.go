package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// decodeQuery decodes a Query's answer as DynamoDB's JSON protocol writes
// it, in one pass over the body: items and keys straight into attribute
// values, strings copied once, binaries decoded from base64 once. What
// this decoder does not know (a member added to the protocol) is skipped,
// as the SDK skips it; what is not valid JSON, or an attribute value of
// no known type, is an error.
func decodeQuery(body []byte) (any, error) {
	d := wireDecoder{b: body}
	out := &dynamodb.QueryOutput{}
	err := d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "Items":
			out.Items, err = d.items()
		case "LastEvaluatedKey":
			out.LastEvaluatedKey, err = d.item()
		case "Count":
			out.Count, err = d.int32()
		case "ScannedCount":
			out.ScannedCount, err = d.int32()
		case "ConsumedCapacity":
			out.ConsumedCapacity, err = d.consumed()
		default:
			_, err = d.skip()
		}
		return err
	})
	return d.end(out, err)
}

// decodeBatchGet decodes a BatchGetItem's answer as decodeQuery does a
// Query's.
func decodeBatchGet(body []byte) (any, error) {
	d := wireDecoder{b: body}
	out := &dynamodb.BatchGetItemOutput{}
	err := d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "Responses":
			out.Responses, err = named(&d, d.items)
		case "UnprocessedKeys":
			out.UnprocessedKeys, err = named(&d, d.keysAndAttributes)
		case "ConsumedCapacity":
			if null, err := d.isNull(); null || err != nil {
				return err
			}
			out.ConsumedCapacity = []types.ConsumedCapacity{}
			err = d.array(func() error {
				cc, err := d.consumed()
				if cc == nil {
					cc = &types.ConsumedCapacity{} // a null element, as the SDK takes it
				}
				out.ConsumedCapacity = append(out.ConsumedCapacity, *cc)
				return err
			})
		default:
			_, err = d.skip()
		}
		return err
	})
	return d.end(out, err)
}

// named reads an object of values by name (a table's, an index's, an
// attribute's); a null object is nil.
func named[T any](d *wireDecoder, value func() (T, error)) (map[string]T, error) {
	if null, err := d.isNull(); null || err != nil {
		return nil, err
	}
	out := map[string]T{}
	err := d.object(func(name []byte) error {
		v, err := value()
		out[string(name)] = v
		return err
	})
	return out, err
}

func (d *wireDecoder) keysAndAttributes() (types.KeysAndAttributes, error) {
	var ka types.KeysAndAttributes
	err := d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "Keys":
			ka.Keys, err = d.items()
		case "ConsistentRead":
			if null, err := d.isNull(); null || err != nil {
				return err
			}
			var b bool
			b, err = d.bool()
			ka.ConsistentRead = &b
		case "ProjectionExpression":
			if null, err := d.isNull(); null || err != nil {
				return err
			}
			var s string
			s, err = d.string()
			ka.ProjectionExpression = &s
		case "ExpressionAttributeNames":
			ka.ExpressionAttributeNames, err = named(d, d.string)
		case "AttributesToGet":
			if null, err := d.isNull(); null || err != nil {
				return err
			}
			ka.AttributesToGet = []string{}
			err = d.array(func() error {
				s, err := d.string()
				ka.AttributesToGet = append(ka.AttributesToGet, s)
				return err
			})
		default:
			_, err = d.skip()
		}
		return err
	})
	return ka, err
}

// end is out, once the document has nothing after it.
func (d *wireDecoder) end(out any, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	if d.ws(); d.i != len(d.b) {
		return nil, d.fail("text after the answer")
	}
	return out, nil
}

// wireDecoder reads one JSON document from b, at i.
type wireDecoder struct {
	b []byte
	i int
}

var errEnd = errors.New("unexpected end of the answer")

func (d *wireDecoder) fail(what string) error {
	return fmt.Errorf("answer at byte %d: %s", d.i, what)
}

func (d *wireDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next is the next byte after whitespace, not consumed.
func (d *wireDecoder) next() (byte, error) {
	d.ws()
	if d.i >= len(d.b) {
		return 0, errEnd
	}
	return d.b[d.i], nil
}

func (d *wireDecoder) expect(c byte) error {
	got, err := d.next()
	if err != nil {
		return err
	}
	if got != c {
		return d.fail(fmt.Sprintf("want %q, have %q", c, got))
	}
	d.i++
	return nil
}

// object reads {"key": value, ...}, calling member at each value, which
// must read it. A null object is no members.
func (d *wireDecoder) object(member func(key []byte) error) error {
	return d.sequence('{', '}', func() error {
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		return member(key)
	})
}

// array reads [value, ...], calling elem at each value, which must read
// it. A null array is no elements.
func (d *wireDecoder) array(elem func() error) error { return d.sequence('[', ']', elem) }

// sequence reads open, elements separated by commas, close; or null.
func (d *wireDecoder) sequence(open, close byte, elem func() error) error {
	c, err := d.next()
	if err != nil {
		return err
	}
	if c == 'n' {
		return d.literal("null")
	}
	if err := d.expect(open); err != nil {
		return err
	}
	if c, err := d.next(); err != nil {
		return err
	} else if c == close {
		d.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		c, err := d.next()
		if err != nil {
			return err
		}
		switch c {
		case ',':
			d.i++
		case close:
			d.i++
			return nil
		default:
			return d.fail(fmt.Sprintf("want , or %c", close))
		}
	}
}

// isNull reads a null if one is next.
func (d *wireDecoder) isNull() (bool, error) {
	if c, err := d.next(); err != nil || c != 'n' {
		return false, err
	}
	return true, d.literal("null")
}

func (d *wireDecoder) literal(lit string) error {
	d.ws()
	if !bytes.HasPrefix(d.b[d.i:], []byte(lit)) {
		return d.fail("want " + lit)
	}
	d.i += len(lit)
	return nil
}

// rawString reads a string and returns its bytes as the document holds
// them when it has no escape (the common case, no copy), else unescaped
// by the standard library.
func (d *wireDecoder) rawString() ([]byte, error) {
	if err := d.expect('"'); err != nil {
		return nil, err
	}
	start := d.i
	escaped := false
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			if !escaped {
				return d.b[start : d.i-1], nil
			}
			var s string
			if err := json.Unmarshal(d.b[start-1:d.i], &s); err != nil {
				return nil, err
			}
			return []byte(s), nil
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			return nil, d.fail("control character in a string")
		default:
			d.i++
		}
	}
	return nil, errEnd
}

func (d *wireDecoder) string() (string, error) {
	b, err := d.rawString()
	return string(b), err
}

func (d *wireDecoder) binary() ([]byte, error) {
	b, err := d.rawString()
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

func (d *wireDecoder) bool() (bool, error) {
	c, err := d.next()
	if err != nil {
		return false, err
	}
	if c == 't' {
		return true, d.literal("true")
	}
	return false, d.literal("false")
}

func (d *wireDecoder) int32() (int32, error) {
	raw, err := d.skip()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(raw), 10, 32)
	return int32(n), err
}

// skip reads any one value and returns its text.
func (d *wireDecoder) skip() ([]byte, error) {
	c, err := d.next()
	if err != nil {
		return nil, err
	}
	start := d.i
	switch {
	case c == '{':
		err = d.object(func([]byte) error { _, err := d.skip(); return err })
	case c == '[':
		err = d.array(func() error { _, err := d.skip(); return err })
	case c == '"':
		_, err = d.rawString()
	case c == 't':
		err = d.literal("true")
	case c == 'f':
		err = d.literal("false")
	case c == 'n':
		err = d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		for d.i++; d.i < len(d.b) && numberByte(d.b[d.i]); d.i++ {
		}
		if !json.Valid(d.b[start:d.i]) { // the grammar's details: 00, 1., -
			err = d.fail("not a number")
		}
	default:
		err = d.fail(fmt.Sprintf("no value starts with %q", c))
	}
	return d.b[start:d.i], err
}

func numberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

func (d *wireDecoder) items() ([]map[string]types.AttributeValue, error) {
	if null, err := d.isNull(); null || err != nil {
		return nil, err
	}
	out := []map[string]types.AttributeValue{}
	err := d.array(func() error {
		it, err := d.item()
		out = append(out, it)
		return err
	})
	return out, err
}

// item reads a map of attribute values.
func (d *wireDecoder) item() (map[string]types.AttributeValue, error) { return named(d, d.value) }

// value reads one attribute value: an object of exactly one member, its
// type.
func (d *wireDecoder) value() (types.AttributeValue, error) {
	var v types.AttributeValue
	err := d.object(func(key []byte) error {
		if v != nil {
			return d.fail("an attribute value of two types")
		}
		var err error
		switch string(key) {
		case "S":
			var s string
			s, err = d.string()
			v = &types.AttributeValueMemberS{Value: s}
		case "N":
			var s string
			s, err = d.string()
			v = &types.AttributeValueMemberN{Value: s}
		case "B":
			var b []byte
			b, err = d.binary()
			v = &types.AttributeValueMemberB{Value: b}
		case "BOOL":
			var b bool
			b, err = d.bool()
			v = &types.AttributeValueMemberBOOL{Value: b}
		case "NULL":
			var b bool
			b, err = d.bool()
			v = &types.AttributeValueMemberNULL{Value: b}
		case "M":
			var m map[string]types.AttributeValue
			m, err = d.item()
			v = &types.AttributeValueMemberM{Value: m}
		case "L":
			l := []types.AttributeValue{}
			err = d.array(func() error {
				e, err := d.value()
				l = append(l, e)
				return err
			})
			v = &types.AttributeValueMemberL{Value: l}
		case "SS", "NS":
			ss := []string{}
			err = d.array(func() error {
				s, err := d.string()
				ss = append(ss, s)
				return err
			})
			if key[0] == 'S' {
				v = &types.AttributeValueMemberSS{Value: ss}
			} else {
				v = &types.AttributeValueMemberNS{Value: ss}
			}
		case "BS":
			bs := [][]byte{}
			err = d.array(func() error {
				b, err := d.binary()
				bs = append(bs, b)
				return err
			})
			v = &types.AttributeValueMemberBS{Value: bs}
		default:
			return d.fail(fmt.Sprintf("an attribute value of type %q", key))
		}
		return err
	})
	if err == nil && v == nil {
		err = d.fail("an attribute value of no type")
	}
	return v, err
}

// consumed reads a ConsumedCapacity.
func (d *wireDecoder) consumed() (*types.ConsumedCapacity, error) {
	if null, err := d.isNull(); null || err != nil {
		return nil, err
	}
	cc := &types.ConsumedCapacity{}
	index := func() (types.Capacity, error) {
		var c types.Capacity
		return c, d.capacity(&c.CapacityUnits, &c.ReadCapacityUnits, &c.WriteCapacityUnits)
	}
	err := d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "TableName":
			var s string
			if s, err = d.string(); err == nil {
				cc.TableName = &s
			}
		case "CapacityUnits":
			cc.CapacityUnits, err = d.float()
		case "ReadCapacityUnits":
			cc.ReadCapacityUnits, err = d.float()
		case "WriteCapacityUnits":
			cc.WriteCapacityUnits, err = d.float()
		case "Table":
			cc.Table = &types.Capacity{}
			err = d.capacity(&cc.Table.CapacityUnits, &cc.Table.ReadCapacityUnits, &cc.Table.WriteCapacityUnits)
		case "GlobalSecondaryIndexes":
			cc.GlobalSecondaryIndexes, err = named(d, index)
		case "LocalSecondaryIndexes":
			cc.LocalSecondaryIndexes, err = named(d, index)
		default:
			_, err = d.skip()
		}
		return err
	})
	return cc, err
}

// capacity reads a Capacity's three members.
func (d *wireDecoder) capacity(total, read, write **float64) error {
	return d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "CapacityUnits":
			*total, err = d.float()
		case "ReadCapacityUnits":
			*read, err = d.float()
		case "WriteCapacityUnits":
			*write, err = d.float()
		default:
			_, err = d.skip()
		}
		return err
	})
}

// float reads a number, or the strings the protocol writes for the
// values JSON has no number for, as the SDK does.
func (d *wireDecoder) float() (*float64, error) {
	raw, err := d.skip()
	if err != nil {
		return nil, err
	}
	var f float64
	switch {
	case string(raw) == "null":
		return nil, nil
	case raw[0] == '"':
		switch s := string(raw[1 : len(raw)-1]); {
		case strings.EqualFold(s, "NaN"):
			f = math.NaN()
		case strings.EqualFold(s, "Infinity"):
			f = math.Inf(1)
		case strings.EqualFold(s, "-Infinity"):
			f = math.Inf(-1)
		default:
			return nil, fmt.Errorf("unknown JSON number value: %s", s)
		}
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		if f, err = strconv.ParseFloat(string(raw), 64); err != nil {
			return nil, err
		}
	default:
		return nil, d.fail("want a number")
	}
	return &f, nil
}
