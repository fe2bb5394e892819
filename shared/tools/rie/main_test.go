package rie_test

import (
	"testing"

	"github.com/gitlab-jobs-serverless/jobsapi/shared/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
