package executor

import "errors"

var errMaxWorkers = errors.New("executor: max_workers must be greater than 0")
