using FenceCore.Stress;

// fencecore-stress: the README's main command. Exit 0 when every invariant held, 1 when one broke,
// 2 for bad usage (StressCommand).
return StressCommand.Invoke(args, StressRun.Execute);
