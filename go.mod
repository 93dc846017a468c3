module github.com/asyncgo/asyncgo

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sys v0.50.0

require github.com/sourcegraph/conc v0.3.0
