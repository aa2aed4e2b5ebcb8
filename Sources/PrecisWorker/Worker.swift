public enum Worker {}
