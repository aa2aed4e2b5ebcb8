public enum ParameterServer {}
