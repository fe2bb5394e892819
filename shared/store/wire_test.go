package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/store"
	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// randomValue is an attribute value of any type DynamoDB stores, nested
// up to depth, empty strings, binaries, lists and maps included.
func randomValue(r *rand.Rand, depth int) types.AttributeValue {
	kinds := 10
	if depth == 0 {
		kinds = 8 // no more nesting
	}
	str := func() string {
		return []string{"", "a", `quote " back \ slash`, "ünïcödé ✓", "tab\tnew\nline\u0001", strings.Repeat("x", 300)}[r.IntN(6)]
	}
	bin := func() []byte {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	switch r.IntN(kinds) {
	case 0:
		return &types.AttributeValueMemberS{Value: str()}
	case 1:
		return &types.AttributeValueMemberN{Value: []string{"0", "-12", "3.25", "1e100", "123456789012345678901234567890"}[r.IntN(5)]}
	case 2:
		return &types.AttributeValueMemberB{Value: bin()}
	case 3:
		return &types.AttributeValueMemberBOOL{Value: r.IntN(2) == 0}
	case 4:
		return &types.AttributeValueMemberNULL{Value: true}
	case 5:
		return &types.AttributeValueMemberSS{Value: []string{"a" + str(), "b"}}
	case 6:
		return &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}}
	case 7:
		return &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}}
	case 8:
		l := make([]types.AttributeValue, r.IntN(4))
		for i := range l {
			l[i] = randomValue(r, depth-1)
		}
		return &types.AttributeValueMemberL{Value: l}
	default:
		m := map[string]types.AttributeValue{}
		for i := range r.IntN(4) {
			m["k"+strconv.Itoa(i)] = randomValue(r, depth-1)
		}
		return &types.AttributeValueMemberM{Value: m}
	}
}

// putRandomItems puts n items of random attributes under PK "WIRE", those
// that stored says, and returns the keys of all n.
func putRandomItems(t *testing.T, env *testenv.Env, seed uint64, n int, stored func(int) bool) []map[string]types.AttributeValue {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	var keys []map[string]types.AttributeValue
	for i := range n {
		key := map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "WIRE"},
			"SK": &types.AttributeValueMemberS{Value: fmt.Sprintf("%03d", i)},
		}
		keys = append(keys, key)
		if !stored(i) {
			continue
		}
		it := maps.Clone(key)
		for a := range 1 + r.IntN(6) {
			it["a"+strconv.Itoa(a)] = randomValue(r, 3)
		}
		if _, err := env.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(env.Table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// A Query decoded by typedQuery is the Query the SDK decodes, to the last
// field: items of every attribute type, the last evaluated key, counts
// and consumed capacity (per index too), on pages and on the last one.
func TestTypedQueryDecodesAsTheSDK(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	putRandomItems(t, env, 1, 40, func(int) bool { return true })
	for _, c := range []struct {
		name  string
		limit int32
		cc    types.ReturnConsumedCapacity
	}{{"pages of 7", 7, types.ReturnConsumedCapacityIndexes}, {"one page", 100, types.ReturnConsumedCapacityTotal}, {"no capacity", 13, ""}} {
		t.Run(c.name, func(t *testing.T) {
			in := &dynamodb.QueryInput{
				TableName:                 aws.String(env.Table),
				KeyConditionExpression:    aws.String("PK = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "WIRE"}},
				Limit:                     aws.Int32(c.limit),
				ReturnConsumedCapacity:    c.cc,
			}
			pages := 0
			for {
				sdk, err := env.DynamoDB.Query(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				typed, err := env.DynamoDB.Query(ctx, in, store.TypedQuery)
				if err != nil {
					t.Fatal(err)
				}
				sdk.ResultMetadata, typed.ResultMetadata = middleware.Metadata{}, middleware.Metadata{} // request ids, times
				if !reflect.DeepEqual(sdk, typed) {
					t.Fatalf("page %d: typed\n%s\nSDK\n%s", pages, show(typed), show(sdk))
				}
				pages++
				if sdk.LastEvaluatedKey == nil {
					break
				}
				in.ExclusiveStartKey = sdk.LastEvaluatedKey
			}
			if want := (40 + int(c.limit) - 1) / int(c.limit); pages < want {
				t.Fatalf("%d pages, want at least %d", pages, want)
			}
		})
	}
	// An error answer is the SDK's own error.
	bad := &dynamodb.QueryInput{TableName: aws.String(env.Table + "-missing"), KeyConditionExpression: aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "WIRE"}}}
	_, sdkErr := env.DynamoDB.Query(ctx, bad)
	_, typedErr := env.DynamoDB.Query(ctx, bad, store.TypedQuery)
	var sdkAPI, typedAPI *types.ResourceNotFoundException
	if !errors.As(sdkErr, &sdkAPI) || !errors.As(typedErr, &typedAPI) || sdkAPI.ErrorMessage() != typedAPI.ErrorMessage() {
		t.Fatalf("errors differ: typed %v, SDK %v", typedErr, sdkErr)
	}
}

// A BatchGetItem decoded by typedBatchGet is the one the SDK decodes:
// found and missing keys, projections, consistent or not, with and
// without consumed capacity.
func TestTypedBatchGetDecodesAsTheSDK(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	keys := putRandomItems(t, env, 3, 30, func(i int) bool { return i%5 != 4 }) // every fifth missing
	for _, c := range []struct {
		name string
		ka   types.KeysAndAttributes
		cc   types.ReturnConsumedCapacity
	}{
		{"consistent, indexes", types.KeysAndAttributes{Keys: keys, ConsistentRead: aws.Bool(true)}, types.ReturnConsumedCapacityIndexes},
		{"projected", types.KeysAndAttributes{Keys: keys[:7], ProjectionExpression: aws.String("SK, a1"), ExpressionAttributeNames: nil}, types.ReturnConsumedCapacityTotal},
		{"no capacity", types.KeysAndAttributes{Keys: keys[10:]}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{env.Table: c.ka}, ReturnConsumedCapacity: c.cc}
			sdk, err := env.DynamoDB.BatchGetItem(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			typed, err := env.DynamoDB.BatchGetItem(ctx, in, store.TypedBatchGet)
			if err != nil {
				t.Fatal(err)
			}
			if len(sdk.Responses[env.Table]) == 0 {
				t.Fatal("read nothing")
			}
			if a, b := showBatch(sdk), showBatch(typed); a != b {
				t.Fatalf("typed\n%s\nSDK\n%s", b, a)
			}
		})
	}
}

// showBatch is a BatchGetItem's answer in full, items in key order (the
// protocol leaves their order open).
func showBatch(o *dynamodb.BatchGetItemOutput) string {
	var b strings.Builder
	for _, c := range o.ConsumedCapacity {
		b.WriteString("capacity " + showCapacity(&c) + "\n")
	}
	fmt.Fprintf(&b, "responses nil %v, unprocessed nil %v\n", o.Responses == nil, o.UnprocessedKeys == nil)
	for _, table := range slices.Sorted(maps.Keys(o.Responses)) {
		var items []string
		for _, it := range o.Responses[table] {
			items = append(items, showItem(it))
		}
		slices.Sort(items)
		fmt.Fprintf(&b, "table %s:\n%s\n", table, strings.Join(items, "\n"))
	}
	for _, table := range slices.Sorted(maps.Keys(o.UnprocessedKeys)) {
		ka := o.UnprocessedKeys[table]
		fmt.Fprintf(&b, "unprocessed %s: %+v %v %v %v\n", table, ka.AttributesToGet, showBool(ka.ConsistentRead), ka.ExpressionAttributeNames, showString(ka.ProjectionExpression))
		for _, k := range ka.Keys {
			b.WriteString(showItem(k) + "\n")
		}
	}
	return b.String()
}

func showBool(p *bool) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatBool(*p)
}

func showString(p *string) string {
	if p == nil {
		return "nil"
	}
	return strconv.Quote(*p)
}

// show is a Query's answer in full, pointers followed.
func show(o *dynamodb.QueryOutput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "count %d scanned %d capacity %s last %s\n", o.Count, o.ScannedCount, showCapacity(o.ConsumedCapacity), showItem(o.LastEvaluatedKey))
	for _, it := range o.Items {
		b.WriteString(showItem(it) + "\n")
	}
	return b.String()
}

func showCapacity(c *types.ConsumedCapacity) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprintf("{table %s units %s read %s write %s of table %s gsi %s lsi %s vector %v}", showString(c.TableName),
		showFloat(c.CapacityUnits), showFloat(c.ReadCapacityUnits), showFloat(c.WriteCapacityUnits), showUnits(c.Table),
		showIndexes(c.GlobalSecondaryIndexes), showIndexes(c.LocalSecondaryIndexes), c.VectorIndexes)
}

func showUnits(c *types.Capacity) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprintf("{%s %s %s}", showFloat(c.CapacityUnits), showFloat(c.ReadCapacityUnits), showFloat(c.WriteCapacityUnits))
}

func showIndexes(m map[string]types.Capacity) string {
	if m == nil {
		return "nil"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c := m[k]
		parts = append(parts, k+":"+showUnits(&c))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func showFloat(f *float64) string {
	if f == nil {
		return "nil"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

func showItem(m map[string]types.AttributeValue) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + showValue(m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func showValue(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberM:
		return "M" + showItem(v.Value)
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i := range v.Value {
			parts[i] = showValue(v.Value[i])
		}
		return "L[" + strings.Join(parts, " ") + "]"
	default:
		return fmt.Sprintf("%T%+v", v, v)
	}
}

// answer is a transport that gives every request the same 200 answer.
type answer string

func (a answer) Do(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(a)))}, nil
}

// A body that is not a Query's answer is the SDK's deserialization error,
// never a panic or a half-filled answer.
func TestTypedQueryRejectsWhatIsNotAnAnswer(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{"Items":[{"a":{}}]}`, `{"Items":[{"a":{"X":1}}]}`, `{"Items":[{"a":{"B":"!!"}}]}`,
		`{"Count":"x"}`, `{"Items":[{"a":{"L":[{}]}}]}`, `{"LastEvaluatedKey":{"PK":{"M":{"x":{"Q":""}}}}}`} {
		db := dynamodb.New(dynamodb.Options{Region: "us-east-1", HTTPClient: answer(body), BaseEndpoint: aws.String("http://127.0.0.1:1"),
			RetryMaxAttempts: 1, Credentials: aws.AnonymousCredentials{}})
		out, err := db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String("t")}, store.TypedQuery)
		var de *smithy.DeserializationError
		if !errors.As(err, &de) || out != nil {
			t.Errorf("%q: %v, %v; want a deserialization error", body, out, err)
		}
	}
}

// Whatever the body, typedQuery and typedBatchGet never panic, and an
// answer they accept is one the SDK's deserializer accepts and decodes to
// the same output.
func FuzzTypedAnswers(f *testing.F) {
	f.Add(`{"Count":1,"Items":[{"L":{"B":"AQID"},"PK":{"S":"P#1"}}],"ScannedCount":1,"ConsumedCapacity":{"TableName":"t","CapacityUnits":0.5}}`, false)
	f.Add(`{"Items":[{"a":{"M":{"b":{"L":[{"N":"1"},{"NULL":true},{"BOOL":false},{"SS":["x","y"]}]}}}}],"LastEvaluatedKey":{"PK":{"S":"\u00e9\n"}},"Count":1}`, false)
	f.Add(`{"Items":[],"Count":0,"ScannedCount":0,"Unknown":{"x":[1,2.5e3,"s",null,true]}}`, false)
	f.Add(`{"Items":[{"b":{"BS":["AA==",""]},"n":{"NS":["1","-2.5"]}}],"ConsumedCapacity":{"Table":{"CapacityUnits":1},"GlobalSecondaryIndexes":{"G":{"ReadCapacityUnits":"NaN"}}}}`, false)
	f.Add(`{"Responses":{"t":[{"PK":{"S":"a"},"n":{"N":"1"}}]},"UnprocessedKeys":{},"ConsumedCapacity":[{"TableName":"t","CapacityUnits":1.5}]}`, true)
	f.Add(`{"Responses":{"t":[]},"UnprocessedKeys":{"t":{"Keys":[{"PK":{"S":"b"}}],"ConsistentRead":true,"ProjectionExpression":"#a","ExpressionAttributeNames":{"#a":"x"},"AttributesToGet":[]}}}`, true)
	f.Fuzz(func(t *testing.T, body string, batch bool) {
		db := dynamodb.New(dynamodb.Options{Region: "us-east-1", HTTPClient: answer(body), BaseEndpoint: aws.String("http://127.0.0.1:1"),
			RetryMaxAttempts: 1, Credentials: aws.AnonymousCredentials{}})
		ctx := context.Background()
		var typed, sdk string
		var err, sdkErr error
		if batch {
			in := &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"t": {Keys: []map[string]types.AttributeValue{{"PK": &types.AttributeValueMemberS{Value: "a"}}}}}}
			var o *dynamodb.BatchGetItemOutput
			if o, err = db.BatchGetItem(ctx, in, store.TypedBatchGet); err == nil {
				typed = showBatch(o)
				o, sdkErr = db.BatchGetItem(ctx, in)
				if sdkErr == nil {
					sdk = showBatch(o)
				}
			}
		} else {
			in := &dynamodb.QueryInput{TableName: aws.String("t")}
			var o *dynamodb.QueryOutput
			if o, err = db.Query(ctx, in, store.TypedQuery); err == nil {
				typed = show(o)
				o, sdkErr = db.Query(ctx, in)
				if sdkErr == nil {
					sdk = show(o)
				}
			}
		}
		if err != nil {
			return
		}
		if sdkErr != nil {
			t.Fatalf("typed accepts what the SDK rejects (%v):\n%s", sdkErr, typed)
		}
		if typed != sdk {
			t.Fatalf("typed\n%s\nSDK\n%s", typed, sdk)
		}
	})
}
