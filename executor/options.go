package executor

import "errors"

var (
	errMaxWorkers       = errors.New("executor: max_workers must be greater than 0")
	errMaxTasksPerChild = errors.New("executor: max_tasks_per_child must be >= 1")
)
