package loop

func (l *Loop) shutdownDefaultExecutor() {}
