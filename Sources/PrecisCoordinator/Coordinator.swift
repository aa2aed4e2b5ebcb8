public enum Coordinator {}
