// Hub upload (issue 5): filled in by the hub work.
public enum PrecisHub {}
