// The invariant checker lives here (issue 7).
