@description('Account name (also its custom subdomain).')
param name string

@description('Azure region.')
param location string

@description('Subnet for private endpoints.')
param privateEndpointSubnetId string

@description('Private DNS zone id for openai.azure.com.')
param dnsZoneId string

@description('Chat model deployment.')
param chatModel object = {
  name: 'gpt-4o-mini'
  version: '2024-07-18'
  capacity: 30
}

@description('Embeddings model deployment.')
param embeddingModel object = {
  name: 'text-embedding-3-small'
  version: '1'
  capacity: 30
}

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  kind: 'OpenAI'
  sku: { name: 'S0' }
  properties: {
    customSubDomainName: name
    publicNetworkAccess: 'Disabled'
    disableLocalAuth: true
    networkAcls: { defaultAction: 'Deny' }
  }
}

resource chat 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: 'chat'
  sku: {
    name: 'Standard'
    capacity: chatModel.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: chatModel.name
      version: chatModel.version
    }
  }
}

resource embeddings 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: 'embeddings'
  sku: {
    name: 'Standard'
    capacity: embeddingModel.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: embeddingModel.name
      version: embeddingModel.version
    }
  }
  dependsOn: [ chat ] // deployments on one account are created one at a time
}

module endpoint 'privateEndpoint.bicep' = {
  name: '${name}-pe-openai'
  params: {
    name: '${name}-pe-openai'
    location: location
    subnetId: privateEndpointSubnetId
    targetId: account.id
    groupId: 'account'
    dnsZoneId: dnsZoneId
  }
}

output endpoint string = account.properties.endpoint
output name string = account.name
output id string = account.id
