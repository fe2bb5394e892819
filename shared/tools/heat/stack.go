package heat

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// NewStack makes the clients of a replay on table at endpoint (which must
// exist with the store's schema): one recorded, one raw.
func NewStack(ctx context.Context, cfg aws.Config, endpoint, table string) (Stack, error) {
	at := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) }
	raw := dynamodb.NewFromConfig(cfg, at)
	rec, err := NewRecorder(ctx, raw, table)
	if err != nil {
		return Stack{}, err
	}
	db := dynamodb.NewFromConfig(cfg, at, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, rec.Middleware) })
	return Stack{DB: db, Raw: raw, Table: table, Rec: rec}, nil
}
