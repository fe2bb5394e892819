package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Once is an action's Idempotency-Key: the record, written in the action's
// own transaction, that the action happened and which job it showed, so
// that a repeat with the same key shows that job again instead of acting
// again. Key is OnceKey's hash; the zero Once records nothing.
type Once struct {
	Key     string
	At      time.Time // when the action runs: a record expired by then counts as none
	Expires time.Time // DynamoDB's TTL deletes the record after it, within days
}

// OnceKey scopes an Idempotency-Key to the caller's credential, the job and
// the action: the same key from another caller, on another job or for
// another action names another record. Stored hashed, as tokens are.
func OnceKey(tokenHash string, jobID int64, action, key string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{tokenHash, id(jobID), action, key}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// Done is a Once record that exists: the job its action showed.
type Done struct {
	JobID   int64     `db:"job"`
	Expires time.Time `db:"-"`
	TTL     int64     `db:"ttl"` // epoch seconds, the table's TTL attribute
}

func onceKey(k string) item { return key("I#"+k, "I") }

// onceWrite is the Put of o's record naming the job shown, on the condition
// that no live record of that key exists (of two concurrent repeats, one
// acts).
func (s *Store) onceWrite(o Once, shownID int64) op {
	it := withKey(item{"job": num(shownID), "ttl": num(o.Expires.Unix())}, onceKey(o.Key))
	return op{race: true, w: types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(s.table), Item: it,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR #ttl <= :now"),
		ExpressionAttributeNames:  map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(o.At.Unix())},
	}}}
}

// Live reports whether the record still counts at t.
func (d *Done) Live(t time.Time) bool { return d.Expires.After(t) }

func decodeDone(it item) (*Done, error) {
	var d Done
	if err := unmarshal(it, &d); err != nil {
		return nil, err
	}
	d.Expires = time.Unix(d.TTL, 0)
	return &d, nil
}
